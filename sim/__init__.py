"""realsim.sim (public API documented here as it lands)."""
