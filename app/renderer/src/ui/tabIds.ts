// Ids that tie each tab of the strip to its panel (aria-controls, aria-labelledby).
export const tabId = (key: string) => `tabbar-${key}`;
export const panelId = (key: string) => `panel-${key}`;
