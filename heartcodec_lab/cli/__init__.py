"""Console commands: thin modules over the library (the only Hydra users besides training/)."""
