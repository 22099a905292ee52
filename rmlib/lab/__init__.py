"""The lab: machinery the lessons use but need not read.

``engine``     batched Bradley-Terry training of many configurations at once (lesson 05)
``explorers``  ipywidgets explorers of lessons 02 (variance.py) and 05 (training.py)
``plots``      seed bands and per-group error bars
``real``       a real pretrained backbone, loaded offline, and the tensor its head reads (lesson 07)
``zero3``      DeepSpeed ZeRO-3 on one CPU process: a re-init outside GatheredParameters (lesson 07)
``trainer``    TRL's RewardTrainer on the packaged backbone (lesson 08)
``reviews``    the shipped review preferences with a known true reward (lesson 08, ``data/reviews.jsonl``)
"""
