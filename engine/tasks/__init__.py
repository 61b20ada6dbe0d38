"""A user's Task as a workload: batches through a DataLoader, the loss contract, evaluation, previews."""
