"""Cross-modal self-distillation (paper section 2.1.3) and the contrastive loss that replaces it
in the w/o-S1 ablation (section 3.4)."""

import torch
import torch.nn.functional as F


SD_DIRECTIONS = ("topic_teaches", "as_printed")


def self_distillation_loss(
    teacher: torch.Tensor,
    student: torch.Tensor,
    mask: torch.Tensor | None = None,
    temperature: float = 1.0,
    detach_teacher: bool = True,
    direction: str = "topic_teaches",
) -> torch.Tensor:
    """Section 2.1.3: mean over nodes of a KL divergence between softmax(. / tau) of the two views.

    The softmax runs over the embedding dimension. The text has the topic-aware view teach the
    rating-aware one, KL(p_teacher || p_student) (``direction='topic_teaches'``); the printed
    formula reads KL(T(e_inter) || S(e_topic)), i.e. KL(p_student || p_teacher)
    (``direction='as_printed'``). With ``detach_teacher`` no gradient of this loss reaches the
    teacher (topic-aware) side. ``mask`` [N] keeps only the nodes that have a teacher (at least
    one topic); a node without topics has an all-zero teacher that would teach only noise.
    """
    if direction not in SD_DIRECTIONS:
        raise ValueError(f"sd_direction={direction!r} is not valid; choose 'topic_teaches' or 'as_printed'")
    # teacher, student: [N, d]; mask: [N] bool
    if detach_teacher:
        teacher = teacher.detach()
    if mask is not None:
        teacher, student = teacher[mask], student[mask]
    if teacher.shape[0] == 0:
        return student.sum() * 0.0
    teacher_log_p = F.log_softmax(teacher / temperature, dim=-1)
    student_log_p = F.log_softmax(student / temperature, dim=-1)
    # F.kl_div(log q, log p) = KL(p || q) = sum p (log p - log q), over d, then mean over nodes.
    if direction == "topic_teaches":
        return F.kl_div(student_log_p, teacher_log_p, reduction="batchmean", log_target=True)
    return F.kl_div(teacher_log_p, student_log_p, reduction="batchmean", log_target=True)


def info_nce_loss(
    anchor: torch.Tensor, positive: torch.Tensor, temperature: float = 0.2
) -> torch.Tensor:
    """w/o-S1: InfoNCE between two views of the same nodes; the other rows are the negatives."""
    # anchor, positive: [B, d] -> scalar
    if anchor.shape[0] == 0:  # no node of the batch has a topic: nothing to contrast (not NaN)
        return (anchor.sum() + positive.sum()) * 0.0
    anchor = F.normalize(anchor, dim=-1)
    positive = F.normalize(positive, dim=-1)
    logits = anchor @ positive.T / temperature  # [B, B]
    labels = torch.arange(anchor.shape[0], device=anchor.device)
    return F.cross_entropy(logits, labels)
