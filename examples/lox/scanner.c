/*
 * scanner.c - the lexer: source text in, tokens out, on demand.
 *
 * The compiler pulls one token at a time, so the whole token stream never
 * exists. Nothing here allocates: tokens point into the source text.
 */
#include "scanner.h"

#include <stdbool.h>
#include <string.h>

static struct {
    const char *start;   /* first character of the token being scanned */
    const char *current; /* next character to read                     */
    int line;
} sc;

void scanner_init(const char *source)
{
    sc.start = source;
    sc.current = source;
    sc.line = 1;
}

static bool at_end(void)
{
    return *sc.current == '\0';
}

static char advance(void)
{
    return *sc.current++;
}

static char peek(void)
{
    return *sc.current;
}

static char peek_next(void)
{
    return at_end() ? '\0' : sc.current[1];
}

static bool match(char expected)
{
    if (at_end() || *sc.current != expected)
        return false;
    sc.current++;
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static Token make_token(TokenType type)
{
    return (Token){type, sc.start, (int)(sc.current - sc.start), sc.line};
}

static Token error_token(const char *message)
{
    return (Token){TOKEN_ERROR, message, (int)strlen(message), sc.line};
}

/* Skips whitespace and // comments, counting newlines. */
static void skip_blank(void)
{
    for (;;) {
        switch (peek()) {
        case '\n':
            sc.line++;
            /* fall through */
        case ' ':
        case '\r':
        case '\t':
            advance();
            break;
        case '/':
            if (peek_next() != '/')
                return;
            while (peek() != '\n' && !at_end())
                advance();
            break;
        default:
            return;
        }
    }
}

/* The sixteen reserved words. Scanning them is compile-time work, so a
 * plain search suffices: most identifiers fail on length or first letter. */
static const struct {
    const char *text;
    int length;
    TokenType type;
} keywords[] = {
    {"and", 3, TOKEN_AND},       {"class", 5, TOKEN_CLASS}, {"else", 4, TOKEN_ELSE},
    {"false", 5, TOKEN_FALSE},   {"for", 3, TOKEN_FOR},     {"fun", 3, TOKEN_FUN},
    {"if", 2, TOKEN_IF},         {"nil", 3, TOKEN_NIL},     {"or", 2, TOKEN_OR},
    {"print", 5, TOKEN_PRINT},   {"return", 6, TOKEN_RETURN}, {"super", 5, TOKEN_SUPER},
    {"this", 4, TOKEN_THIS},     {"true", 4, TOKEN_TRUE},   {"var", 3, TOKEN_VAR},
    {"while", 5, TOKEN_WHILE},
};

static TokenType identifier_type(void)
{
    int length = (int)(sc.current - sc.start);
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++) {
        if (keywords[i].length == length && keywords[i].text[0] == sc.start[0] &&
            memcmp(keywords[i].text, sc.start, (size_t)length) == 0)
            return keywords[i].type;
    }
    return TOKEN_IDENTIFIER;
}

static Token identifier(void)
{
    while (is_alpha(peek()) || is_digit(peek()))
        advance();
    return make_token(identifier_type());
}

/* Digits, optionally a '.' followed by more digits; no exponent, no sign. */
static Token number(void)
{
    while (is_digit(peek()))
        advance();
    if (peek() == '.' && is_digit(peek_next())) {
        advance();
        while (is_digit(peek()))
            advance();
    }
    return make_token(TOKEN_NUMBER);
}

/* A string runs to the next '"' and may span lines; there are no escapes. */
static Token string(void)
{
    while (peek() != '"' && !at_end()) {
        if (peek() == '\n')
            sc.line++;
        advance();
    }
    if (at_end())
        return error_token("Unterminated string.");
    advance();
    return make_token(TOKEN_STRING);
}

Token scanner_next(void)
{
    skip_blank();
    sc.start = sc.current;
    if (at_end())
        return make_token(TOKEN_EOF);

    char c = advance();
    if (is_alpha(c))
        return identifier();
    if (is_digit(c))
        return number();
    switch (c) {
    case '(': return make_token(TOKEN_LEFT_PAREN);
    case ')': return make_token(TOKEN_RIGHT_PAREN);
    case '{': return make_token(TOKEN_LEFT_BRACE);
    case '}': return make_token(TOKEN_RIGHT_BRACE);
    case ';': return make_token(TOKEN_SEMICOLON);
    case ',': return make_token(TOKEN_COMMA);
    case '.': return make_token(TOKEN_DOT);
    case '-': return make_token(TOKEN_MINUS);
    case '+': return make_token(TOKEN_PLUS);
    case '/': return make_token(TOKEN_SLASH);
    case '*': return make_token(TOKEN_STAR);
    case '!': return make_token(match('=') ? TOKEN_BANG_EQUAL : TOKEN_BANG);
    case '=': return make_token(match('=') ? TOKEN_EQUAL_EQUAL : TOKEN_EQUAL);
    case '<': return make_token(match('=') ? TOKEN_LESS_EQUAL : TOKEN_LESS);
    case '>': return make_token(match('=') ? TOKEN_GREATER_EQUAL : TOKEN_GREATER);
    case '"': return string();
    }
    return error_token("Unexpected character.");
}
