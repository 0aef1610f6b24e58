"""Publish a folder (a dataset export, a reward-model checkpoint) to the Hugging Face Hub.

The token is huggingface_hub's own (`hf auth login`, or HF_TOKEN). Failures (no token, no
network, no right to write to the repo) surface as huggingface_hub's OSError subclasses,
which the CLIs report as one `error:` line (labeling.cli).
"""
from __future__ import annotations

from pathlib import Path

REPO_TYPES = {"model": "https://huggingface.co/", "dataset": "https://huggingface.co/datasets/"}


def check_repo_id(repo_id: str) -> str:
    """`owner/name`, or ValueError saying what a repo id looks like."""
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"repo id {repo_id!r}: expected 'owner/name', e.g. 'my-user/my-reward-model'")
    return repo_id


def push_folder(folder: str | Path, repo_id: str, repo_type: str, private: bool = False,
                commit_message: str = "Upload with the reward-model lab") -> str:
    """Create `repo_id` if needed (private when asked) and upload every file of `folder`;
    returns the repo's URL."""
    from huggingface_hub import HfApi

    if repo_type not in REPO_TYPES:
        raise ValueError(f"repo_type must be one of {', '.join(REPO_TYPES)}, got {repo_type!r}")
    api = HfApi()
    api.create_repo(check_repo_id(repo_id), repo_type=repo_type, private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type=repo_type,
                      commit_message=commit_message)
    return REPO_TYPES[repo_type] + repo_id
