// librdkafka, Debian's librdkafka-dev: the consumer the ingest stage uses, and the mock cluster
// (a real Kafka protocol endpoint on loopback) the tests produce into.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
