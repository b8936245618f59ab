"""Datasets: the bag-of-words tokenizer and text dataset (problem 2(a)iii), IMDB, MNIST."""

import re
import string

import nltk
import tensorflow_datasets as tfds
import torch
from nltk.corpus import stopwords
from nltk.stem import PorterStemmer
from torch.utils.data import Dataset
from torchvision import datasets, transforms
from tqdm import tqdm

PAD_TOKEN = "<PAD>"
EOS_TOKEN = "<EOS>"
HTML_TAG = re.compile(r"<[^>]*>")
NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


class BOWTokenizer:
    """Given: the vocab_size - 1 most frequent words get ids 1, 2, ...; 0 is padding."""

    def __init__(self, vocab_size):
        self.vocab_size = vocab_size
        self.word_to_index = {PAD_TOKEN: 0}
        self.index_to_word = {0: PAD_TOKEN}

    def fit(self, data):
        counts = {}
        for text, _ in data:
            for word in text:
                counts[word] = counts.get(word, 0) + 1
        ranked = sorted(counts, key=lambda w: counts[w], reverse=True)[: self.vocab_size - 1]
        for index, word in enumerate(ranked, start=1):
            self.word_to_index[word] = index
            self.index_to_word[index] = word

    def transform(self, text):
        if isinstance(text, str):
            text = text.split()
        return [self.word_to_index[w] for w in text if w in self.word_to_index]


class TextClassificationDataset(Dataset):
    def __init__(self, data, tokenizer=None, vocab_size=10000, min_seq_length=0,
                 max_seq_length=400, dataset_length=None, pad=True, quiet=False):
        self.quiet = quiet
        self.raw_data = data
        self.vocab_size = vocab_size
        self.min_seq_length = min_seq_length
        self.max_seq_length = max_seq_length
        self.dataset_length = dataset_length
        if dataset_length and dataset_length < len(self.raw_data):
            self.raw_data = self.raw_data[:dataset_length]
        nltk.download("stopwords", quiet=True)
        self.tokenizer = tokenizer
        self.data = self._preprocess_data()
        self.data = self._tokenize_data()
        if pad:
            self.data = self._pad_sequences()
        self.data = self._convert_to_tensors()

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]

    def _preprocess_data(self):
        stop_words = set(stopwords.words("english"))
        stemmer = PorterStemmer()
        texts = self.raw_data if self.quiet else tqdm(self.raw_data, desc="Preprocessing")
        preprocessed = []
        for text, label in texts:
            text = HTML_TAG.sub(" ", text.lower()).translate(NO_PUNCTUATION)
            words = [stemmer.stem(w) for w in text.split() if w not in stop_words]
            preprocessed.append((words, label))
        return preprocessed

    def _tokenize_data(self):
        if not self.tokenizer:
            self.tokenizer = BOWTokenizer(vocab_size=self.vocab_size)
            self.tokenizer.fit(self.data)
        return [(self.tokenizer.transform(text), label) for text, label in self.data]

    def _pad_sequences(self):
        padded = []
        for indices, label in self.data:
            if len(indices) < self.min_seq_length:
                continue
            indices = indices[: self.max_seq_length]
            padding = [self.tokenizer.word_to_index[PAD_TOKEN]] * (self.max_seq_length
                                                                   - len(indices))
            padded.append((padding + indices, label))
        return padded

    def _convert_to_tensors(self):
        return [(torch.tensor(indices), label) for indices, label in self.data]


class IMDBDataset(TextClassificationDataset):
    """Given: the IMDB reviews from TensorFlow Datasets."""

    def __init__(self, split="train", dataset_length=-1, tokenizer=None, min_seq_length=0,
                 max_seq_length=200):
        reviews, labels = tfds.as_numpy(tfds.load("imdb_reviews", split=split, batch_size=-1,
                                                  as_supervised=True))
        data = list(zip([r.decode("utf-8") for r in reviews], labels))
        super().__init__(data, tokenizer=tokenizer, min_seq_length=min_seq_length,
                         max_seq_length=max_seq_length,
                         dataset_length=None if dataset_length == -1 else dataset_length)


def load_mnist_dataset():
    """Given: MNIST through torchvision (downloaded into data/)."""
    transform = transforms.Compose([transforms.ToTensor()])
    train = datasets.MNIST("data", train=True, download=True, transform=transform)
    test = datasets.MNIST("data", train=False, download=True, transform=transform)
    return train, test
