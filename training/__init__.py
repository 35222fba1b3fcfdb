"""Fine-tuning FLAN-T5 on DialogSum: full, LoRA and prompt tuning (`python -m training --help`)."""
