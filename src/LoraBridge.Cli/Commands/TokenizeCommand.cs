using System.CommandLine;
using LoraBridge.Tokenizers;

namespace LoraBridge.Cli.Commands;

/// <summary><c>lorabridge prompt tokenize [--tokenizer DIR] --jsonl</c>: CLIP token ids, as openai/CLIP gives them.</summary>
public static class TokenizeCommand
{
    /// <summary>Builds the command (added under <c>prompt</c>).</summary>
    public static Command Create()
    {
        var dir = new Option<string?>("--tokenizer") { Description = "Folder with vocab.json + merges.txt or bpe_simple_vocab_16e6.txt.gz" };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Find the tokenizer that belongs to this checkpoint file" };
        var jsonl = new Option<bool>("--jsonl") { Description = "Read {\"text\"} lines on stdin, write {\"text\",\"ids\"} (ids without BOS/EOS)" };
        var text = new Argument<string?>("text") { Description = "Text to tokenize (omit with --jsonl)", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("tokenize", "CLIP token ids of prompt text");
        command.Options.Add(dir);
        command.Options.Add(checkpoint);
        command.Options.Add(jsonl);
        command.Arguments.Add(text);
        command.SetAction(parse =>
        {
            try
            {
                var location = new TokenizerLocator().Locate(parse.GetValue(checkpoint), parse.GetValue(dir));
                var tokenizer = ClipTokenizer.Load(location);
                Console.Error.WriteLine($"tokenizer: {location.Directory} ({location.Reason})");
                if (parse.GetValue(jsonl))
                {
                    TokenizeJsonl.Run(Console.In, Console.Out, tokenizer);
                    return 0;
                }
                if (parse.GetValue(text) is not { } value)
                {
                    Console.Error.WriteLine("prompt tokenize: give a text, or --jsonl to read lines from stdin");
                    return 2;
                }
                Console.Out.WriteLine(string.Join(' ', tokenizer.Encode(value)));
                return 0;
            }
            catch (Exception e) when (e is TokenizerNotFoundException or InvalidDataException or FileNotFoundException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}
