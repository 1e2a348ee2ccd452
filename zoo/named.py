"""Named models: a backbone with a method preset, as the papers describe them.

`PRESETS` are the methods; the named models pair them with backbones. ReActNet-A is
MobileNetV1 based ("-mobilenet"), ReActNet-18 is ResNet-18 based ("-resnet18").

A preset follows the authors' released code where there is one, because that code produced
the paper's figures (`FOLLOWS`; METHODS.md section 6): ReBNN's scale, backward pass and
constant gamma, and GAAF's sign without a threshold. The other versions stay one option
away: `Method(weights="learned", gamma="adaptive")` is ReBNN's paper with our scale, and
`Method(threshold="static", gaaf=...)` GAAF with our learnable threshold.
"""

from larq_methods.method import Method
from zoo.registry import get_entry, register_preset

# The GAAF models' genome: s * x * sigmoid(|x|), found by this project's own search (the
# paper's 15 formulas were not available), `benchmarks/gaaf_search.py`: of the search's top
# three, it trained best on the leaderboard's terms (66.3% against 63.8% for the earlier
# default sin(x) + x, two seeds; benchmarks/results/gaaf_search.md, the log beside it).
DEFAULT_GAAF_GENOME = "gate(scale,abs)"

PRESETS = {
    "reactnet": Method(),
    "insta": Method(threshold="insta", activation="insta-prelu"),
    "insta-plus": Method(threshold="insta+", activation="insta-prelu"),
    "dybnn": Method(threshold="dynamic", activation="dyprelu"),
    "rebnn": Method(weights="rebnn-code", gamma=2e-4),
    "ftbnn": Method(activation="fprelu", downsample="binary", groups=2, group_width=1.5),
    "gaaf": Method(threshold="none", gaaf=DEFAULT_GAAF_GENOME),
}

# What each preset follows (one word): the authors' released "code", the "paper" (no code
# was released: INSTA-BNN, DyBNN, FTBNN), or "ours". GAAF's sign and ops follow the code;
# its genome is ours (the paper's searched formulas were not published).
FOLLOWS = {
    "reactnet": "code",
    "insta": "paper",
    "insta-plus": "paper",
    "dybnn": "paper",
    "rebnn": "code",
    "ftbnn": "paper",
    "gaaf": "code",
}

_PAPERS = {
    "insta": "INSTA-BNN: INSTA-Th + INSTA-PReLU [Lee et al. ICCV 2023]",
    "insta-plus": "INSTA-BNN: INSTA-Th+ (SE-like) + INSTA-PReLU [Lee et al. ICCV 2023]",
    "dybnn": "DyBNN: DySign + DyPReLU [Zhang et al. ICASSP 2022]",
    "rebnn": "ReBNN as released: scale 0.02|s|, the code's backward pass, gamma 2e-4 [Xu et al. AAAI 2023]",
    "ftbnn": "FTBNN: FPReLU, binary downsampling, 2 groups in 1.5x wider stages 2-4 [Su et al. 2020]",
    "gaaf": f"GAAF: complementary activation {DEFAULT_GAAF_GENOME} before the sign, no threshold [Li et al. 2023]",
}

# (name, backbone, preset)
NAMED_MODELS = (
    ("insta-mobilenet", "reactnet-a", "insta"),
    ("insta-plus-mobilenet", "reactnet-a", "insta-plus"),
    ("insta-resnet18", "reactnet-18", "insta"),
    ("insta-plus-resnet18", "reactnet-18", "insta-plus"),
    ("dybnn-mobilenet", "reactnet-a", "dybnn"),
    ("dybnn-resnet18", "reactnet-18", "dybnn"),
    ("rebnn-resnet18", "reactnet-18", "rebnn"),
    ("ftbnn-resnet18", "reactnet-18", "ftbnn"),
    ("gaaf-resnet18", "reactnet-18", "gaaf"),
    ("insta-quicknet", "quicknet", "insta"),
    ("insta-birealnet", "birealnet", "insta"),
    ("dybnn-quicknet", "quicknet", "dybnn"),
    ("dybnn-birealnet", "birealnet", "dybnn"),
)

for _name, _backbone, _preset in NAMED_MODELS:
    register_preset(_name, _backbone, PRESETS[_preset], f"{_PAPERS[_preset]} on {_backbone}", FOLLOWS[_preset])

# Float counterparts: each backbone with its own method and every quantizer off (no sign,
# real weights), to train as a teacher for distillation or as a reference.
FLOAT_MODELS = (
    ("float-mobilenet", "reactnet-a"),
    ("float-resnet18", "reactnet-18"),
    ("float-birealnet", "birealnet"),
    ("float-quicknet", "quicknet"),
)

for _name, _backbone in FLOAT_MODELS:
    register_preset(
        _name,
        _backbone,
        get_entry(_backbone).method.replace(binarise="none"),
        f"float counterpart of {_backbone} (quantizers off): a teacher for distillation",
    )
