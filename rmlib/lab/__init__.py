"""The lab: machinery the lessons use but need not read.

``engine``         batched Bradley-Terry training of many configurations at once (lesson 05)
``explorers``      ipywidgets explorers of lessons 02 (variance.py) and 05 (training.py)
``plots``          seed bands and per-group error bars
``real``           lesson 07's real pretrained backbone: one namespace over the next four modules
``backbone``       is the ``real`` extra installed; load the backbone online or offline
``head_input``     what each architecture's score head reads; hidden states of sentences (``data/sentences.jsonl``)
``hidden_stats``   statistics of hidden states, of a layer's weights, of initial rewards
``requires_real``  the ``%%requires_real`` cell magic
``zero3``          DeepSpeed ZeRO-3 on one CPU process: a re-init outside GatheredParameters (lesson 07)
``trainer``        TRL's RewardTrainer on the packaged backbone (lesson 08)
``reviews``        the shipped review preferences with a known true reward (lesson 08, ``data/reviews.jsonl``)
``child``          a computation started in a child process in a lesson's first cell, collected later (07, 08)
"""
