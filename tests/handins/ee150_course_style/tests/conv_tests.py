# the course tests folder travels with the zip
