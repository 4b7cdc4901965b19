/* test_provider: the SES/SNS rules that need no network: which certificate
 * and subscription URLs are trusted (service/domain/provider.c), and the
 * canonical string an SNS message is verified over (service/evparse.c), in
 * the field order AWS documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "service/base/error.h"
#include "service/domain/provider.h"
#include "service/evparse.h"

static struct provider_ses aws(const char *suffix)
{
	struct provider_ses c;
	memset(&c, 0, sizeof c);
	c.n_topics = 1;
	snprintf(c.topics[0], sizeof c.topics[0], "arn:aws:sns:us-east-1:123456789012:ses");
	snprintf(c.cert_host_suffix, sizeof c.cert_host_suffix, "%s", suffix);
	return c;
}

static void test_only_https_pem_urls_under_the_suffix_are_trusted(void **state)
{
	(void)state;
	struct provider_ses c = aws(".amazonaws.com");
	static const char *const good[] = {
		"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem",
		"https://SNS.EU-WEST-1.AMAZONAWS.COM/SimpleNotificationService-1.pem",
		"https://sns.us-east-1.amazonaws.com:443/a/b.pem",
	};
	static const char *const bad[] = {
		"http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
		"https://sns.us-east-1.amazonaws.com.evil.org/SimpleNotificationService-1.pem",
		"https://evilamazonaws.com/SimpleNotificationService-1.pem",
		"https://sns.us-east-1.amazonaws.com@evil.org/x.pem",
		"https://evil.org/sns.us-east-1.amazonaws.com/x.pem",
		"https://evil.org\\@sns.amazonaws.com/x.pem",
		"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem?x=1",
		"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.txt",
		"https://sns.us-east-1.amazonaws.com/x.pem#frag",
		"https://sns.us-east-1.amazonaws.com:/x.pem",
		"https://sns.us-east-1.amazonaws.com:44x/x.pem",
		"https://[::1]/x.pem",
		"https://sns.us-east-1.amazonaws.com./x.pem",
		"https://sns%2eamazonaws.com/x.pem",
		"https://sns.us-east-1.amazonaws.com",
		"https://sns.us-east-1.amazonaws.com/x .pem",
		"",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_int_equal(provider_sns_url_ok(&c, good[i], true), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err_clear();
		assert_int_equal(provider_sns_url_ok(&c, bad[i], true), ERR_UNAUTHENTICATED);
	}
	assert_int_equal(provider_sns_url_ok(&c, NULL, true), ERR_UNAUTHENTICATED);
	/* A SubscribeURL has a query and no .pem. */
	assert_int_equal(
		provider_sns_url_ok(&c,
				    "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&"
				    "TopicArn=arn:aws:sns:us-east-1:123456789012:ses&Token=2336",
				    false),
		0);
	/* A suffix without a leading dot still stops at a label boundary. */
	struct provider_ses l = aws("localhost");
	assert_int_equal(provider_sns_url_ok(&l, "https://localhost:8443/c.pem", true), 0);
	assert_int_equal(provider_sns_url_ok(&l, "https://a.localhost/c.pem", true), 0);
	assert_int_equal(provider_sns_url_ok(&l, "https://evillocalhost/c.pem", true), ERR_UNAUTHENTICATED);
}

static void test_the_canonical_string_follows_the_documented_order(void **state)
{
	(void)state;
	struct evp_sns m;
	/* Members in another order than signed, and with a JSON escape: the
	 * canonical string has the decoded values in AWS's order. */
	static const char note[] =
		"{\"Type\":\"Notification\",\"TopicArn\":\"arn:aws:sns:us-east-1:1:t\",\"Subject\":\"Hi\","
		"\"MessageId\":\"m-1\",\"Message\":\"line1\\nline2\",\"Timestamp\":\"2026-12-01T12:00:00.123Z\","
		"\"SignatureVersion\":\"1\",\"Signature\":\"c2ln\",\"SigningCertURL\":\"https://x.amazonaws.com/c.pem\","
		"\"UnsubscribeURL\":\"https://x.amazonaws.com/?Action=Unsubscribe\"}";
	assert_int_equal(evparse_sns(note, strlen(note), &m), 0);
	assert_int_equal(m.type, EVP_SNS_NOTIFICATION);
	assert_int_equal(m.version, 1);
	assert_string_equal(m.canonical,
			    "Message\nline1\nline2\nMessageId\nm-1\nSubject\nHi\nTimestamp\n"
			    "2026-12-01T12:00:00.123Z\nTopicArn\narn:aws:sns:us-east-1:1:t\nType\n"
			    "Notification\n");
	assert_int_equal(m.canonical_len, strlen(m.canonical));
	evparse_sns_clear(&m);
	assert_null(m.canonical);

	static const char conf[] =
		"{\"Type\":\"SubscriptionConfirmation\",\"MessageId\":\"m-2\",\"Token\":\"tok\","
		"\"TopicArn\":\"arn:aws:sns:us-east-1:1:t\",\"Message\":\"confirm\",\"SubscribeURL\":"
		"\"https://x.amazonaws.com/?Action=ConfirmSubscription\",\"Timestamp\":\"2026-12-01T12:00:00Z\","
		"\"SignatureVersion\":\"2\",\"Signature\":\"c2ln\",\"SigningCertURL\":\"https://x.amazonaws.com/c.pem\"}";
	assert_int_equal(evparse_sns(conf, strlen(conf), &m), 0);
	assert_int_equal(m.type, EVP_SNS_SUBSCRIBE);
	assert_string_equal(m.canonical,
			    "Message\nconfirm\nMessageId\nm-2\nSubscribeURL\n"
			    "https://x.amazonaws.com/?Action=ConfirmSubscription\nTimestamp\n"
			    "2026-12-01T12:00:00Z\nToken\ntok\nTopicArn\narn:aws:sns:us-east-1:1:t\nType\n"
			    "SubscriptionConfirmation\n");
	evparse_sns_clear(&m);
	/* A confirmation without its Token cannot be verified: refused. */
	static const char no_token[] =
		"{\"Type\":\"SubscriptionConfirmation\",\"MessageId\":\"m-2\",\"TopicArn\":\"arn:aws:sns:x:1:t\","
		"\"Message\":\"c\",\"SubscribeURL\":\"https://x.amazonaws.com/\",\"Timestamp\":\"2026-12-01T12:00:00Z\","
		"\"SignatureVersion\":\"2\",\"Signature\":\"c2ln\",\"SigningCertURL\":\"https://x.amazonaws.com/c.pem\"}";
	assert_int_equal(evparse_sns(no_token, strlen(no_token), &m), ERR_INVALID);
	assert_null(m.canonical);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_only_https_pem_urls_under_the_suffix_are_trusted),
		cmocka_unit_test(test_the_canonical_string_follows_the_documented_order),
	};
	return cmocka_run_group_tests_name("provider", tests, NULL, NULL);
}
