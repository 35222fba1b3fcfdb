"""The miniature experiment's names, shared by the stages that run it (experiment.py) and the
report that evaluates and describes it (mini_report.py)."""

STAGES = ("tokenizer", "original", "instruct", "lora", "prompt", "evaluate")
MODEL_STAGES = {"original": "mini-original", "instruct": "mini-instruct", "lora": "mini-lora",
                "prompt": "mini-prompt"}  # stage -> the model folder it writes
LICENSE_NOTE = (
    "Trained on DialogSum (Chen et al., 2021), which is licensed CC BY-NC-SA 4.0: these weights "
    "are derived from it and are for **non-commercial use only**, under the same terms.")
