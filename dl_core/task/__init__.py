"""The task of a run: what its targets are and what the model's outputs mean.

`Forecast` (a window of a series -> horizon x targets; dl_core/task/forecast.py), `Regression` and
`Classification` (one target column of a table; dl_core/task/table.py). A task owns the target side of
a run: it encodes the targets for training and decodes outputs back into the target's units or labels,
chooses the training loss, computes the metrics of a split, and turns outputs into predictions (and
class probabilities). The preprocessor owns the input side. The data bundle builds the task, fitted on
the training rows; the pipeline gives it the kind of the model's outputs (`with_outputs`) once the model
is built, and it never changes after: checkpoints store it, so prediction and serving decode outputs
exactly as training did. Which plot a task's predictions get is tracking's (dl_core/tracking/plots.py),
what a client is told of its targets serving's (dl_core/serving/load.py).

The two kinds of task have two protocols, `ForecastTask` and `TableTask`, since their data steps ask
different things of them (a forecast learns its scaling from rows of several target columns, a table's
task from one target column); both are a `Task` to the engine. What differs between tasks is a method
here, so no other module compares task names.
"""

from dl_core.task.base import LossFn, Task
from dl_core.task.forecast import Forecast, ForecastTask
from dl_core.task.table import TABLE_TASKS, Classification, Regression, TableTask

__all__ = ["TABLE_TASKS", "Classification", "Forecast", "ForecastTask", "LossFn", "Regression", "TableTask", "Task"]
