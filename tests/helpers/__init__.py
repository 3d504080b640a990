"""Code the tests share (imported as `helpers.<module>`; tests/ is on pytest's pythonpath): the causal-LM checks both
model packages run, the committed task fixtures, and the loader of transformers' own common tests."""
