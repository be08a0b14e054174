"""What ``python -m experiments.bench`` measures, one module per subject: the training loader (``loader``),
the scorers (``scorers``), MCDM's constant-memory generation (``mcdm_memory``) and JoyVASA's audio-to-motion
speed (``joyvasa_motion``). ``experiments/bench.py`` is the one command; ``experiments/timing.py`` the clock
it shares with the runner's speed tables."""
