using System.Diagnostics.CodeAnalysis;

namespace MessageQueue;

/// <summary>
/// The grammar of queue names, subscription names, event names and filters. Every public entry point
/// validates through here, so the rules and their error messages live in one place.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Queue and subscription names: 1 to 200 characters of ASCII letters, digits, <c>-</c>, <c>_</c> and
/// <c>.</c>, starting with a letter or digit. Names containing <c>$</c> are reserved for the broker
/// (dead-letter queues are <c>&lt;queue&gt;.$dlq</c>).</item>
/// <item>Event names: 1 to 255 characters; words separated by single dots; a word is one or more
/// characters other than <c>.</c>, <c>*</c>, <c>#</c>, white space and control characters.</item>
/// <item>Filters: like event names, except that a whole word may be <c>*</c> (exactly one word) or
/// <c>#</c> (zero or more words), as in AMQP topic exchanges.</item>
/// </list>
/// </remarks>
internal static class Names
{
    public const int MaxNameLength = 200;
    public const int MaxEventLength = 255;
    public const string DeadLetterSuffix = ".$dlq";

    public static void ValidateQueueName([NotNull] string? name, string paramName, bool allowDeadLetter)
    {
        ArgumentNullException.ThrowIfNull(name, paramName);
        if (allowDeadLetter && name.EndsWith(DeadLetterSuffix, StringComparison.Ordinal))
        {
            string source = name[..^DeadLetterSuffix.Length];
            if (DescribeInvalidName(source, "Queue name") is null)
            {
                return;
            }
        }

        if (DescribeInvalidName(name, "Queue name") is { } error)
        {
            throw new ArgumentException(error, paramName);
        }
    }

    /// <summary>Returns why <paramref name="name"/> is not a valid queue or subscription name, or null when it is.</summary>
    public static string? DescribeInvalidName(string name, string what)
    {
        if (name.Length == 0)
        {
            return $"{what} is empty; use 1 to {MaxNameLength} characters of letters, digits, '-', '_' and '.'.";
        }

        if (name.Length > MaxNameLength)
        {
            return $"{what} is {name.Length} characters long; the limit is {MaxNameLength}.";
        }

        if (!char.IsAsciiLetterOrDigit(name[0]))
        {
            return name.Contains('$', StringComparison.Ordinal)
                ? $"{what} '{name}' contains '$', which is reserved for the broker's own names (such as '<queue>{DeadLetterSuffix}')."
                : $"{what} '{name}' must start with a letter or digit.";
        }

        foreach (char c in name)
        {
            if (!IsNameCharacter(c))
            {
                return c == '$'
                    ? $"{what} '{name}' contains '$', which is reserved for the broker's own names (such as '<queue>{DeadLetterSuffix}')."
                    : $"{what} '{name}' contains '{Printable(c)}'; use only letters, digits, '-', '_' and '.'.";
            }
        }

        return null;
    }

    /// <summary>Whether <paramref name="c"/> may appear in a queue or subscription name.</summary>
    public static bool IsNameCharacter(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.';

    public static void ValidateEvent([NotNull] string? eventName, string paramName)
    {
        ArgumentNullException.ThrowIfNull(eventName, paramName);
        if (DescribeInvalidTopic(eventName, isFilter: false) is { } error)
        {
            throw new ArgumentException(error, paramName);
        }
    }

    public static void ValidateFilter([NotNull] string? filter, string paramName)
    {
        ArgumentNullException.ThrowIfNull(filter, paramName);
        if (DescribeInvalidTopic(filter, isFilter: true) is { } error)
        {
            throw new ArgumentException(error, paramName);
        }
    }

    public static void ValidateClientName([NotNull] string? name, string paramName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name, paramName);
        if (name.Length > MaxNameLength)
        {
            throw new ArgumentException($"Client name is {name.Length} characters long; the limit is {MaxNameLength}.", paramName);
        }

        if (name[0] == '$')
        {
            throw new ArgumentException($"Client name '{name}' starts with '$', which is reserved for the broker's built-in client.", paramName);
        }

        foreach (char c in name)
        {
            if (char.IsControl(c))
            {
                throw new ArgumentException($"Client name contains the control character {Printable(c)}; use printable characters.", paramName);
            }
        }
    }

    private static string? DescribeInvalidTopic(string text, bool isFilter)
    {
        string what = isFilter ? "Filter" : "Event name";
        if (text.Length == 0)
        {
            return isFilter
                ? "Filter is empty; use an event name, or '#' to match every event."
                : "Event name is empty; use one or more dot-separated words, such as 'delete' or 'ep42.results'.";
        }

        if (text.Length > MaxEventLength)
        {
            return $"{what} is {text.Length} characters long; the limit is {MaxEventLength}.";
        }

        int wordStart = 0;
        for (int i = 0; i <= text.Length; i++)
        {
            if (i < text.Length && text[i] != '.')
            {
                continue;
            }

            ReadOnlySpan<char> word = text.AsSpan(wordStart, i - wordStart);
            if (word.IsEmpty)
            {
                return $"{what} '{text}' has an empty word at position {wordStart}; words are separated by single dots, with none at the start or end.";
            }

            bool wildcard = word is "*" or "#";
            if (wildcard && !isFilter)
            {
                return $"Event name '{text}' contains the wildcard '{word}'; wildcards belong in subscription filters, not in published event names.";
            }

            if (!wildcard)
            {
                foreach (char c in word)
                {
                    if (c is '*' or '#')
                    {
                        return isFilter
                            ? $"Filter '{text}' uses '{c}' inside the word '{word}'; '*' and '#' must stand alone as a whole word, as in 'orders.*' or 'orders.#'."
                            : $"Event name '{text}' contains '{c}'; '*' and '#' are reserved for filters.";
                    }

                    if (char.IsWhiteSpace(c) || char.IsControl(c))
                    {
                        return $"{what} '{text}' contains {Printable(c)}; white space and control characters are not allowed.";
                    }
                }
            }

            wordStart = i + 1;
        }

        return null;
    }

    private static string Printable(char c) => char.IsControl(c) || char.IsWhiteSpace(c) ? $"U+{(int)c:X4}" : c.ToString();
}
