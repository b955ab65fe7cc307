"""Identity and integrity: the PKI, and signatures on model manifests."""
