/* placeholder: replaced by the real Check test */
int main(void) { return 77; }
