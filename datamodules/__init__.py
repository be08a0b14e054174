"""Data: the batch contract and shared clip sampler (``clips``, ``base``), the built-in SynthTalk
benchmark (``synthtalk`` with ``synth_speech``, ``synth_motion``, ``synth_faces``), the real data
sets (``hdtf``, ``celebvhq``, ``ravdess``, ``folder``), splits and reports, preprocessing and the
feature cache (``preprocess``), that cache streamed as shards to many nodes (``shards``), loader
throughput (``bench``). Media I/O is ``core.video_io``."""
