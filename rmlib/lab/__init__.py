"""The lab: machinery the lessons use but need not read.

``engine``     batched Bradley-Terry training of many configurations at once (lesson 05)
``explorers``  ipywidgets explorers of lessons 02 and 05
``plots``      seed bands and per-group error bars
``real``       a real pretrained backbone, loaded offline, and the tensor its reward head reads (lesson 07)
``reviews``    a small preference set on real text with a known true reward (lessons 07-08)
``trainer``    TRL's RewardTrainer on that backbone, offline, on CPU, in fp32 (lesson 08)
"""
