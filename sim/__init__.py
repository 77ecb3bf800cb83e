"""The simulated world: a virtual clock, seeded ids, scripted rails and the store benchmark."""
