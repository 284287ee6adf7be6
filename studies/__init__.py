"""The paper's studies of SD-MTMP: its procedure step by step, the ablation, its readings and
variants, the sensitivity sweeps, the leaking window against depth and untrained, the floor and
negatives checks, and where every tuned study stands. Scripts over the plugin's public
functions (cells, tuning studies, tables), run from the checkout's root; not in the wheel."""
