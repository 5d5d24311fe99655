"""Video: colorizing whole films frame by frame (streaming), scene cuts, temporal stability, flicker."""
