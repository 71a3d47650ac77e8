"""``python -m memadmin.memory.onnx_export MODEL_DIR OUT``: the model's transformer, as ONNX, into OUT.

Run in a child process by memadmin/memory/onnx_embedder.py (never imported by it), so that the process that
asked (a web worker, the embedder process) never loads torch: only this short-lived child does, once per
change of the weights or of torch/onnx. The graph stops at the transformer's last hidden state; the
pooling and normalisation that sentence-transformers adds are done on its output in numpy.
"""

from __future__ import annotations

import sys

# Bumped when what this module writes changes: the cached file's name includes it, so a new version
# is exported again rather than an old file used.
EXPORT_VERSION = 1
OPSET = 17


def export(model_dir: str, out: str) -> None:
    import torch
    from transformers import AutoModel

    torch.set_num_threads(1)
    # Eager attention: the plain masked softmax, which traces into a graph that holds for every shape. The
    # SDPA path decides on the mask from the sample's values (no padding: no mask), which a trace freezes.
    model = AutoModel.from_pretrained(model_dir, local_files_only=True, attn_implementation="eager")
    model.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    # Two texts of unequal length, as in a real batch: the second one padded.
    sample = torch.tensor([[101, 7592, 2088, 2003, 1037, 3231, 1012, 102], [101, 7592, 102, 0, 0, 0, 0, 0]])
    mask = (sample != 0).to(torch.int64)
    dynamic = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        # The TorchScript exporter (dynamo=False): it needs only the onnx package, where the dynamo exporter
        # of torch 2.x also needs onnxscript; it gives the same graph for this model.
        torch.onnx.export(
            LastHiddenState(model),
            (sample, mask, torch.zeros_like(sample)),
            out,
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                "input_ids": dynamic,
                "attention_mask": dynamic,
                "token_type_ids": dynamic,
                "last_hidden_state": dynamic,
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m memadmin.memory.onnx_export MODEL_DIR OUT")
    export(sys.argv[1], sys.argv[2])
