/* failover-writer: placeholder, replaced by the bench helper. */
int main(void) { return 0; }
