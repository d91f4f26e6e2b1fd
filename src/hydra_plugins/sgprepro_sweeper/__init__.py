"""sgprepro's Hydra sweeper plugin: the basic sweeper, composing each cell's config once."""
