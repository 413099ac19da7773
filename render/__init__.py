"""realsim.render (public API documented here as it lands)."""
