# Corpus case: no answer is right.
question_1 = "z"
question_2 = "z"
question_3 = "z"
