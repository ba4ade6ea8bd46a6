using System.Text.Json.Nodes;

namespace LoraBridge.Server;

/// <summary>
/// A request the API refuses, answered as A1111's API answers errors: status code and
/// <c>{"error", "detail", "body", "errors"}</c> (never a stack trace).
/// </summary>
public sealed class ApiError(int status, string error, string detail) : Exception(detail)
{
    /// <summary>HTTP status code.</summary>
    public int Status { get; } = status;

    /// <summary>A1111's <c>error</c>: the exception's type name.</summary>
    public string Error { get; } = error;

    /// <summary>A1111's <c>detail</c>: what was wrong.</summary>
    public string Detail { get; } = detail;

    /// <summary>The response body in A1111's shape.</summary>
    public static JsonObject Body(string error, string detail, string body = "", string? errors = null) => new()
    {
        ["error"] = error,
        ["detail"] = detail,
        ["body"] = body,
        ["errors"] = errors ?? detail,
    };

    /// <summary>422 for a field with a wrong type or out-of-range value, naming the field.</summary>
    public static ApiError Invalid(string field, string message) => new(422, "ValidationError", $"{field}: {message}");
}
