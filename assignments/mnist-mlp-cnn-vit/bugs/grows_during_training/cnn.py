"""A CNN that adds a layer once training starts (docs/security.md G4): it passes the size checks,
which summarise it before any training, but its module tree changes while it is graded."""

from torch import nn


def block(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.MaxPool2d(2)]


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*block(1, 16), *block(16, 32), *block(32, 32))
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 3 * 3, 64), nn.ReLU(),
            nn.Linear(64, 10),
        )

    def forward(self, x):
        if self.training and not hasattr(self, "booster"):
            self.booster = nn.Linear(10, 10)
        scores = self.head(self.features(x))
        return self.booster(scores) if hasattr(self, "booster") else scores
