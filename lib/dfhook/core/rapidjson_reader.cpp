#include "dfhook/core/rapidjson_reader.hpp"

namespace dfhook::core {

std::string syntax_reason(rapidjson::ParseErrorCode code, bool at_end, bool non_finite) {
  switch (code) {
  case rapidjson::kParseErrorDocumentEmpty:
    return "the document is empty";
  case rapidjson::kParseErrorValueInvalid:
    if (non_finite) {
      return "NaN and Infinity are not JSON numbers";
    }
    return at_end ? "unexpected end of the document" : "expected a JSON value";
  case rapidjson::kParseErrorObjectMissName:
    return at_end ? "unexpected end of the document" : "expected a member name in double quotes";
  case rapidjson::kParseErrorObjectMissColon:
    return at_end ? "unexpected end of the document" : "expected ':' after the member name";
  case rapidjson::kParseErrorObjectMissCommaOrCurlyBracket:
    return at_end ? "unexpected end of the document" : "expected ',' or '}' after a member";
  case rapidjson::kParseErrorArrayMissCommaOrSquareBracket:
    return at_end ? "unexpected end of the document" : "expected ',' or ']' after an element";
  case rapidjson::kParseErrorStringUnicodeEscapeInvalidHex:
    return "\\u must be followed by 4 hex digits";
  case rapidjson::kParseErrorStringUnicodeSurrogateInvalid:
    return "\\u escape of a UTF-16 high surrogate not followed by a low surrogate";
  case rapidjson::kParseErrorStringEscapeInvalid:
    return "invalid escape or unescaped control character in a string";
  case rapidjson::kParseErrorStringMissQuotationMark:
    return at_end ? "unexpected end of the document in a string" : "unterminated string";
  case rapidjson::kParseErrorStringInvalidEncoding:
    return "invalid UTF-8";
  case rapidjson::kParseErrorNumberTooBig:
    return "number too big";
  case rapidjson::kParseErrorNumberMissFraction:
    return "expected digits after the decimal point";
  case rapidjson::kParseErrorNumberMissExponent:
    return "expected digits in the exponent";
  default:
    return "syntax error";
  }
}

}  // namespace dfhook::core
