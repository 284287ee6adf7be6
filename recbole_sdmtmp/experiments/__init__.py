"""What ``compare`` and ``tune`` stand on: the models a table ranks (catalogue), the cells it runs
(planning) and their finished runs (cells), their statistics, tables and figures, the topic fit
a run read (fits), and the Optuna tuning studies (tuning). The paper's own studies build on these
from the checkout's ``studies/`` folder."""
