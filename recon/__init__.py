"""realsim.recon (public API documented here as it lands)."""
