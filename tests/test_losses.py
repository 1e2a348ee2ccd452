import numpy as np
import tensorflow as tf

from larq_methods.losses import DistributionalLoss


def test_distributional_loss_hand_computed():
    teacher = tf.constant([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    student = tf.constant([[0.5, 0.3, 0.2], [0.25, 0.25, 0.5]])
    # -(0.7 ln 0.5 + 0.2 ln 0.3 + 0.1 ln 0.2) = 0.886942;  -(0.2 ln 0.25 + 0.8 ln 0.5) = 0.831777
    per_example = [0.886942, 0.831777]
    np.testing.assert_allclose(DistributionalLoss(reduction="none")(teacher, student), per_example, rtol=1e-5)
    np.testing.assert_allclose(DistributionalLoss()(teacher, student), np.mean(per_example), rtol=1e-5)


def test_distributional_loss_from_logits_matches_probabilities():
    t_logits = tf.constant([[2.0, 0.5, -1.0]])
    s_logits = tf.constant([[0.3, 0.1, 0.9]])
    from_probs = DistributionalLoss()(tf.nn.softmax(t_logits), tf.nn.softmax(s_logits))
    from_logits = DistributionalLoss(from_logits=True)(t_logits, s_logits)
    np.testing.assert_allclose(from_logits, from_probs, rtol=1e-5)


def test_teacher_gets_no_gradient_and_student_does():
    teacher = tf.Variable([[2.0, 0.5, -1.0]])
    student = tf.Variable([[0.3, 0.1, 0.9]])
    with tf.GradientTape() as tape:
        loss = DistributionalLoss(from_logits=True)(teacher, student)
    d_teacher, d_student = tape.gradient(loss, [teacher, student])
    assert d_teacher is None or not np.any(d_teacher.numpy())
    # d/ds of CE(softmax(t), softmax(s)) = softmax(s) - softmax(t)
    np.testing.assert_allclose(d_student, tf.nn.softmax(student) - tf.nn.softmax(teacher), atol=1e-6)


def test_config_round_trip():
    loss = DistributionalLoss(from_logits=True)
    assert DistributionalLoss.from_config(loss.get_config()).from_logits is True
    assert tf.keras.utils.get_registered_object("lqm>DistributionalLoss") is DistributionalLoss
