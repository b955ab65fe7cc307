"""Code both tiers import: wire contracts, preprocessing, configs, registry read side."""
