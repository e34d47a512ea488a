"""Training: trainer, curriculum, fine-tuning, multi-task learning, checkpoints, DDP.

See :mod:`.trainer` for the run-directory layout, preemption and resume, :mod:`.curriculum`
for the batch-size rule, :mod:`.finetune` for task types and strategies and :mod:`.registry`
for how model names resolve.
"""

from .curriculum import CurriculumLearner, CurriculumStage
from .finetune import STRATEGIES, TASK_MODELS, FineTuner
from .multitask import SCHEDULES, MultiTaskLearner
from .registry import register_model, registered_models, resolve_model
from .state import PREEMPTED_EXIT_CODE, TrainerState, TrainingPreempted, seed_everything
from .trainer import HyenaGLTTrainer

__all__ = [
    "HyenaGLTTrainer",
    "CurriculumLearner",
    "CurriculumStage",
    "FineTuner",
    "MultiTaskLearner",
    "TrainerState",
    "TrainingPreempted",
    "PREEMPTED_EXIT_CODE",
    "TASK_MODELS",
    "STRATEGIES",
    "SCHEDULES",
    "register_model",
    "registered_models",
    "resolve_model",
    "seed_everything",
]
