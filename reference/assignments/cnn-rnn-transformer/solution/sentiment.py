"""A sentiment classifier for movie-review snippets.

Input: token ids (N, T) int64, 0 = padding (after the text), 1 = unknown word.
Output: scores (N, 2) for (negative, positive). Any architecture within the
parameter limit is fine; this one averages word embeddings.
"""

from torch import nn


class SentimentClassifier(nn.Module):
    """embedding: nn.Embedding(vocab_size, embed_dim, padding_idx=0); mean over the real
    (non-padding) tokens; classifier: Linear(embed_dim, embed_dim), ReLU, Linear(embed_dim, 2)."""

    def __init__(self, vocab_size, embed_dim=64):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.classifier = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 2)
        )

    def forward(self, tokens):
        mask = (tokens != 0).unsqueeze(-1).float()  # (N, T, 1)
        summed = (self.embedding(tokens) * mask).sum(dim=1)
        mean = summed / mask.sum(dim=1).clamp(min=1.0)
        return self.classifier(mean)
