"""The baselines that RecBole 1.2.1 lacks, in RecBole's model style."""
