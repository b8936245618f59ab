# Do not import any additional 3rd party external libraries as they will not
# be available to AutoLab and are not needed (or allowed)

# Answer the multiple-choice questions from the writeup.
# Each function returns a single lowercase letter, 'a' to 'e'.


def question_1():
    mc_answer = None  # TODO: replace with your answer, e.g. 'a'
    return mc_answer


def question_2():
    mc_answer = None  # TODO: replace with your answer, e.g. 'a'
    return mc_answer


def question_3():
    mc_answer = None  # TODO: replace with your answer, e.g. 'a'
    return mc_answer


def question_4():
    mc_answer = None  # TODO: replace with your answer, e.g. 'a'
    return mc_answer


def question_5():
    mc_answer = None  # TODO: replace with your answer, e.g. 'a'
    return mc_answer
