"""The worker loop, the learning-rate schedule, evaluation and the end-of-run summary.

No Hydra imports here: everything takes the validated :class:`sgprepro.config.Config`.
"""
