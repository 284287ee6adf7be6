"""The comparison studies and the tuning behind ``compare``, ``tune`` and ``status``: what a
study runs (catalogue, planning), the finished runs (cells), their statistics, tables and
figures, and the Optuna studies (tuning)."""
