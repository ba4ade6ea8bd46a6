using System.Text.Encodings.Web;
using System.Text.Json;

namespace LoraBridge.Tokenizers;

/// <summary>
/// The logic of <c>lorabridge prompt tokenize --jsonl</c>: reads lines <c>{"text": ...}</c> and writes
/// <c>{"text": ..., "ids": [...]}</c> per line, ids without BOS/EOS (the shape of the token conformance records).
/// </summary>
public static class TokenizeJsonl
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
    };

    /// <summary>Tokenizes every non-blank line of <paramref name="input"/> and writes one JSON object per line.</summary>
    /// <returns>The number of records written.</returns>
    /// <exception cref="InvalidDataException">
    /// A line is not a JSON object with a string "text"; the message gives the line number. Lines before it are
    /// already written, so a caller streaming to stdout keeps the good prefix.
    /// </exception>
    public static int Run(TextReader input, TextWriter output, ClipTokenizer tokenizer)
    {
        int lineNo = 0, written = 0;
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        string? line;
        while ((line = input.ReadLine()) != null)
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string text = ReadText(line, lineNo);
            var ids = tokenizer.Encode(text);

            buffer.Clear();
            using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
            {
                writer.WriteStartObject();
                writer.WriteString("text", text);
                writer.WriteStartArray("ids");
                foreach (int id in ids) writer.WriteNumberValue(id);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            output.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan));
            written++;
        }
        return written;
    }

    private static string ReadText(string line, int lineNo)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"line {lineNo}: expected a JSON object like {{\"text\": \"...\"}}.");
            if (!doc.RootElement.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"line {lineNo}: missing string field \"text\".");
            return text.GetString()!;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"line {lineNo}: invalid JSON: {e.Message}", e);
        }
    }
}
