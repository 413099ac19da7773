"""realsim.sim.motion: controllable human-motion diffusion (data, model, training, sampling, controller)."""
