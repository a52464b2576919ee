"""Event sources: particle gun, Pythia8, HepMC2/3 files and generator-level ROOT ntuples."""
