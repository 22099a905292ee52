"""The lab: machinery the lessons use but need not read.

``engine``     batched Bradley-Terry training of many configurations at once (lesson 05)
``explorers``  ipywidgets explorers of lessons 02 and 05
``plots``      seed bands and per-group error bars
``real``       a real pretrained backbone, loaded offline (lesson 07)
"""
