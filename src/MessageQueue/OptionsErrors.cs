namespace MessageQueue;

/// <summary>Turns the list of problems an options class found into one exception.</summary>
internal static class OptionsErrors
{
    public static void ThrowIfAny(List<string>? errors, string optionsName, string paramName)
    {
        if (errors is null || errors.Count == 0)
        {
            return;
        }

        string message = errors.Count == 1
            ? $"{optionsName} is not valid: {errors[0]}"
            : $"{optionsName} is not valid ({errors.Count} problems):{Environment.NewLine}- {string.Join(Environment.NewLine + "- ", errors)}";
        throw new ArgumentException(message, paramName);
    }
}
