"""Cross-modal self-distillation (paper section 2.1.3) and the contrastive loss that replaces it
in the w/o-S1 ablation (section 3.4)."""

import torch
import torch.nn.functional as F


def self_distillation_loss(
    teacher: torch.Tensor,
    student: torch.Tensor,
    mask: torch.Tensor | None = None,
    temperature: float = 1.0,
    detach_teacher: bool = True,
) -> torch.Tensor:
    """Section 2.1.3: mean over nodes of KL(softmax(teacher / tau) || softmax(student / tau)).

    The softmax runs over the embedding dimension. Knowledge flows teacher (topic-aware) ->
    student (rating-aware): with ``detach_teacher`` no gradient of this loss reaches the teacher.
    ``mask`` [N] keeps only the nodes that have a teacher (at least one topic); a node without
    topics has an all-zero teacher, whose uniform distribution would teach nothing but noise.
    """
    # teacher, student: [N, d]; mask: [N] bool
    if detach_teacher:
        teacher = teacher.detach()
    if mask is not None:
        teacher, student = teacher[mask], student[mask]
    if teacher.shape[0] == 0:
        return student.sum() * 0.0
    teacher_log_p = F.log_softmax(teacher / temperature, dim=-1)
    student_log_p = F.log_softmax(student / temperature, dim=-1)
    # KL(p_T || p_S) = sum p_T (log p_T - log p_S), summed over d then averaged over nodes.
    return F.kl_div(student_log_p, teacher_log_p, reduction="batchmean", log_target=True)


def info_nce_loss(
    anchor: torch.Tensor, positive: torch.Tensor, temperature: float = 0.2
) -> torch.Tensor:
    """w/o-S1: InfoNCE between two views of the same nodes; the other rows are the negatives."""
    # anchor, positive: [B, d] -> scalar
    anchor = F.normalize(anchor, dim=-1)
    positive = F.normalize(positive, dim=-1)
    logits = anchor @ positive.T / temperature  # [B, B]
    labels = torch.arange(anchor.shape[0], device=anchor.device)
    return F.cross_entropy(logits, labels)
