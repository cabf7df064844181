/*
 * scanner.h - turning Lox source text into tokens, one at a time.
 *
 * The scanner keeps no copies: a token's text is a pointer into the source
 * and a length, so the source must outlive the tokens (the compiler holds
 * it until compilation ends).
 */
#ifndef LOX_SCANNER_H
#define LOX_SCANNER_H

typedef enum TokenType {
    /* single-character tokens */
    TOKEN_LEFT_PAREN, TOKEN_RIGHT_PAREN, TOKEN_LEFT_BRACE, TOKEN_RIGHT_BRACE,
    TOKEN_COMMA, TOKEN_DOT, TOKEN_MINUS, TOKEN_PLUS, TOKEN_SEMICOLON, TOKEN_SLASH,
    TOKEN_STAR,
    /* one or two characters */
    TOKEN_BANG, TOKEN_BANG_EQUAL, TOKEN_EQUAL, TOKEN_EQUAL_EQUAL,
    TOKEN_GREATER, TOKEN_GREATER_EQUAL, TOKEN_LESS, TOKEN_LESS_EQUAL,
    /* literals */
    TOKEN_IDENTIFIER, TOKEN_STRING, TOKEN_NUMBER,
    /* keywords */
    TOKEN_AND, TOKEN_CLASS, TOKEN_ELSE, TOKEN_FALSE, TOKEN_FOR, TOKEN_FUN, TOKEN_IF,
    TOKEN_NIL, TOKEN_OR, TOKEN_PRINT, TOKEN_RETURN, TOKEN_SUPER, TOKEN_THIS, TOKEN_TRUE,
    TOKEN_VAR, TOKEN_WHILE,
    /* TOKEN_ERROR's text is the error message, not source */
    TOKEN_ERROR, TOKEN_EOF,
    TOKEN_COUNT
} TokenType;

typedef struct Token {
    TokenType type;
    const char *start;
    int length;
    int line;
} Token;

void scanner_init(const char *source);
Token scanner_next(void);

#endif
