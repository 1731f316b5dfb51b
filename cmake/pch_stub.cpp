// Carries the precompiled header (see cmake/mva_layers.cmake).
