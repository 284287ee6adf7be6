"""Models of the plugin: SD-MTMP (sdmtmp/), the baselines it adds to RecBole (baselines/), shared layers (layers/)."""
